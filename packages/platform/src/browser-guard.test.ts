import { describe, expect, it } from "vitest";
import { browserRequestRefusal } from "./browser-guard.js";

describe("browserRequestRefusal", () => {
  it("lets programs through: loopback Host, no Origin", () => {
    expect(browserRequestRefusal({ host: "127.0.0.1:7070" }, "127.0.0.1")).toBeUndefined();
    expect(browserRequestRefusal({ host: "localhost:7070" }, "127.0.0.1")).toBeUndefined();
    expect(browserRequestRefusal({ host: "[::1]:7070" }, "::1")).toBeUndefined();
    expect(browserRequestRefusal({}, "127.0.0.1")).toBeUndefined();
  });

  it("refuses a rebound name on a loopback service (DNS rebinding)", () => {
    const refusal = browserRequestRefusal({ host: "evil.example:7070", origin: "http://evil.example:7070" }, "127.0.0.1");
    expect(refusal?.status).toBe(403);
    expect(refusal?.toBody()).toEqual({
      code: "UNAUTHORIZED",
      message: 'Host "evil.example:7070" is not this service\'s address; this service answers on loopback names only',
      retryable: false,
    });
  });

  it("accepts any Host on a service that listens beyond loopback", () => {
    expect(browserRequestRefusal({ host: "telemetry.example.com" }, "0.0.0.0")).toBeUndefined();
  });

  it("refuses a foreign Origin (CSRF), a null Origin and cross-site fetch metadata", () => {
    expect(browserRequestRefusal({ host: "127.0.0.1:7072", origin: "http://evil.example" }, "127.0.0.1")?.status).toBe(403);
    expect(browserRequestRefusal({ host: "127.0.0.1:7072", origin: "null" }, "127.0.0.1")?.status).toBe(403);
    expect(browserRequestRefusal({ host: "127.0.0.1:7072", origin: "http://127.0.0.1:3000" }, "127.0.0.1")?.status).toBe(403);
    expect(browserRequestRefusal({ host: "127.0.0.1:7072", "sec-fetch-site": "cross-site" }, "127.0.0.1")?.status).toBe(403);
    expect(browserRequestRefusal({ host: "telemetry.example.com", origin: "https://evil.example" }, "0.0.0.0")?.status).toBe(403);
  });

  it("accepts a same-origin request", () => {
    expect(browserRequestRefusal({ host: "127.0.0.1:7072", origin: "http://127.0.0.1:7072", "sec-fetch-site": "same-origin" }, "127.0.0.1")).toBeUndefined();
  });
});
