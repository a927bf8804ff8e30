import { describe, expect, it } from "vitest";
import { SecretMask } from "./secret-mask.js";

describe("SecretMask", () => {
  const mask = new SecretMask(["s3cr3t-token", "-----BEGIN KEY-----\nAAAAline2AAAA\n-----END KEY-----", "abc"]);

  it("masks every occurrence of a value, and each line of a multi-line value", () => {
    expect(mask.text("token=s3cr3t-token; again s3cr3t-token.")).toBe("token=***; again ***.");
    expect(mask.text("key: -----BEGIN KEY-----\nAAAAline2AAAA\n-----END KEY-----")).toBe("key: ***");
    expect(mask.text("line 2 alone: AAAAline2AAAA")).toBe("line 2 alone: ***");
    expect(mask.text("nothing secret here")).toBe("nothing secret here");
  });

  it("leaves values too short to mask alone (they are refused when read)", () => {
    expect(mask.text("abc abc")).toBe("abc abc");
    expect(new SecretMask(["xyz"]).empty).toBe(true);
  });

  it("masks the end of a cut line that begins a secret, and the start of a cut tail that ends one", () => {
    expect(mask.excerpt("printed: s3cr3t-to", { end: true })).toBe("printed: ***");
    expect(mask.excerpt("printed: s3cr3t-to", {})).toBe("printed: s3cr3t-to");
    expect(mask.excerpt("3t-token and more", { start: true })).toBe("*** and more");
    expect(mask.excerpt("plain end", { start: true, end: true })).toBe("plain end");
    expect(mask.excerpt("oken s3cr3t-token s", { start: true, end: true })).toBe("*** *** ***");
  });
});
