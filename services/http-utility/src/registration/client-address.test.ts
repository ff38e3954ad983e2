import { describe, expect, it } from "vitest";
import { clientKey } from "./client-address.ts";

describe("clientKey", () => {
  it("counts an IPv4 address as itself, mapped or not", () => {
    expect(clientKey("198.51.100.7")).toBe("198.51.100.7");
    expect(clientKey("::ffff:198.51.100.7")).toBe("198.51.100.7");
  });

  it("counts every address of an IPv6 /64 as one client", () => {
    const a = clientKey("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
    expect(a).toBe("2001:db8:1:2::/64");
    expect(clientKey("2001:db8:1:2::1")).toBe(a);
    expect(clientKey("2001:0db8:0001:0002::ffff")).toBe(a);
    expect(clientKey("2001:db8:1:3::1")).not.toBe(a);
    expect(clientKey("::1")).toBe("0:0:0:0::/64");
    expect(clientKey("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
  });

  it("keeps anything else as it is", () => {
    expect(clientKey(undefined)).toBe("unknown");
    expect(clientKey("not-an-address")).toBe("not-an-address");
  });
});
