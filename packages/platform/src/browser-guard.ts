/**
 * Keeps web pages away from flowmeter's HTTP services. A page the user opens can send requests to loopback
 * services: a cross-site POST of a "simple" content type needs no preflight (CSRF), and a name the attacker
 * controls can be made to resolve to 127.0.0.1 (DNS rebinding), which makes the request same-origin for the page.
 * Browsers mark both: the first carries a foreign `Origin` (or `Sec-Fetch-Site: cross-site`), the second a `Host`
 * that is the attacker's name. Programs (curl, the swamp CLI, Prometheus) send neither, so they are unaffected.
 */
import { isLoopbackHost } from "./config.js";
import { ApiError } from "@flowmeter/shared";

export interface RequestHeaders {
  host?: string | undefined;
  origin?: string | undefined;
  "sec-fetch-site"?: string | string[] | undefined;
}

/** The host name of a Host header value (`127.0.0.1:7070`, `[::1]:7070`, `localhost`), lower-cased, brackets removed. */
function hostnameOf(hostHeader: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (bracketed?.[1] !== undefined) return bracketed[1].toLowerCase();
  return hostHeader.replace(/:\d+$/, "").toLowerCase();
}

/**
 * The refusal for a request a browser made on a web page's behalf, or undefined when the request may go on.
 * `listenHost` is the address the service listens on: when it is a loopback address, the Host header must name
 * this host (a loopback address or `localhost`), which defeats DNS rebinding.
 */
export function browserRequestRefusal(headers: RequestHeaders, listenHost: string): ApiError | undefined {
  const host = headers.host;
  if (isLoopbackHost(listenHost) && host !== undefined && !isLoopbackHost(hostnameOf(host))) {
    return new ApiError("UNAUTHORIZED", `Host "${host.slice(0, 100)}" is not this service's address; this service answers on loopback names only`, {
      status: 403,
    });
  }
  const origin = headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (originHost === undefined || originHost === "" || host === undefined || originHost !== host.toLowerCase()) {
      return new ApiError("UNAUTHORIZED", `requests from web pages are refused (Origin ${origin.slice(0, 100)})`, { status: 403 });
    }
  }
  const fetchSite = headers["sec-fetch-site"];
  if (fetchSite === "cross-site" || fetchSite === "same-site") {
    return new ApiError("UNAUTHORIZED", "requests from web pages are refused (Sec-Fetch-Site: " + fetchSite + ")", { status: 403 });
  }
  return undefined;
}
