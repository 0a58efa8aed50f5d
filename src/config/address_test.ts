import { describe, expect, test } from "bun:test";
import { addressFrom, formatAddress, parseAddress } from "./address.ts";
import { canonicalCidr } from "./cidr.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "./ip.ts";
import { ConfigError } from "./issues.ts";

const LISTEN = { allowPortZero: true, allowHostnames: false };
const TARGET = { allowPortZero: false, allowHostnames: true };

describe("addressFrom", () => {
  test.each([
    ["127.0.0.1:8443", LISTEN, { kind: "tcp", hostname: "127.0.0.1", port: 8443 }],
    ["0.0.0.0:0", LISTEN, { kind: "tcp", hostname: "0.0.0.0", port: 0 }],
    ["[::1]:443", LISTEN, { kind: "tcp", hostname: "::1", port: 443 }],
    ["[::]:443", LISTEN, { kind: "tcp", hostname: "::", port: 443 }],
    ["[0:0:0:0:0:0:0:1]:443", LISTEN, { kind: "tcp", hostname: "::1", port: 443 }],
    ["[2001:DB8::0:1]:80", TARGET, { kind: "tcp", hostname: "2001:db8::1", port: 80 }],
    ["[::ffff:192.0.2.1]:80", TARGET, { kind: "tcp", hostname: "::ffff:192.0.2.1", port: 80 }],
    ["unix:/run/app.sock", TARGET, { kind: "unix", path: "/run/app.sock" }],
    ["unix:/tmp/l.sock", LISTEN, { kind: "unix", path: "/tmp/l.sock" }],
    ["Backend.Internal:443", TARGET, { kind: "tcp", hostname: "backend.internal", port: 443 }],
    ["bücher.example:443", TARGET, { kind: "tcp", hostname: "xn--bcher-kva.example", port: 443 }],
    ["localhost:65535", TARGET, { kind: "tcp", hostname: "localhost", port: 65535 }],
    ["db_1.internal:5432", TARGET, { kind: "tcp", hostname: "db_1.internal", port: 5432 }],
  ] as const)("%s", (text, opts, address) => {
    expect(addressFrom(text, opts)).toEqual({ address });
  });

  test.each([
    ["127.0.0.1", TARGET, `must be "host:port", "[v6]:port" or "unix:/path", got "127.0.0.1"`],
    ["127.0.0.1:0", TARGET, "port must be 1..65535, got 0"],
    ["127.0.0.1:65536", LISTEN, "port must be 0..65535, got 65536"],
    ["127.0.0.1:70000", TARGET, "port must be 1..65535, got 70000"],
    ["127.0.0.1:http", TARGET, `port must be a number 1..65535, got "http"`],
    ["127.0.0.1:", TARGET, `port must be a number 1..65535, got ""`],
    ["127.0.0.1:123456", TARGET, `port must be a number 1..65535, got "123456"`],
    ["::1:80", TARGET, `an IPv6 address needs brackets ("[::1]:443"), got "::1:80"`],
    ["[::1]", TARGET, `must be "[v6-address]:port", got "[::1]"`],
    ["[::1]80", TARGET, `must be "[v6-address]:port", got "[::1]80"`],
    ["[fe80::1%eth0]:80", TARGET, `is not a valid IPv6 address (zone ids are not supported), got "fe80::1%eth0"`],
    ["[1::2::3]:80", TARGET, `is not a valid IPv6 address`],
    ["[127.0.0.1]:80", TARGET, `is not a valid IPv6 address`],
    ["127.1:80", TARGET, `is not a valid IPv4 address (four decimal octets 0..255), got "127.1"`],
    ["256.0.0.1:80", TARGET, `is not a valid IPv4 address`],
    ["01.2.3.4:80", TARGET, `is not a valid IPv4 address`],
    ["foo.0x7f:80", TARGET, `is not a valid IPv4 address`],
    [":80", LISTEN, `needs a host; use 0.0.0.0 or [::] to listen on every address, got ":80"`],
    ["*:80", LISTEN, `needs a host; use 0.0.0.0 or [::] to listen on every address, got "*:80"`],
    ["localhost:80", LISTEN, `must be an IP address to listen on (127.0.0.1, 0.0.0.0, [::1], [::]), got "localhost"`],
    ["bad host:80", TARGET, "host must not contain U+0020 at offset 3"],
    ["a/b:80", TARGET, "host must not contain '/' at offset 1"],
    ["unix:run/app.sock", TARGET, `unix socket path must be absolute ("unix:/run/app.sock"), got "unix:run/app.sock"`],
    ["unix:/" + "a".repeat(107), TARGET, "unix socket path must be 1..107 bytes, got 108"],
    ["unix:/a\0b", TARGET, "must not contain NUL"],
    ["unix:/x", { ...LISTEN, allowUnix: false }, `must be "host:port" (no unix socket here), got "unix:/x"`],
    ["", TARGET, "must not be empty"],
  ] as const)("%p is refused", (text, opts, message) => {
    const r = addressFrom(text, opts);
    expect("error" in r && r.error).toContain(message);
  });

  test("the longest unix path fits", () => {
    const path = "/" + "a".repeat(106);
    expect(addressFrom("unix:" + path, TARGET)).toEqual({ address: { kind: "unix", path } });
  });
});

test("formatAddress round-trips", () => {
  for (const text of ["127.0.0.1:8443", "[::1]:443", "[2001:db8::1]:80", "unix:/run/app.sock", "backend.internal:443"]) {
    expect(formatAddress(parseAddress(text, "t", TARGET))).toBe(text);
  }
});

test("parseAddress throws a ConfigError naming the field", () => {
  expect(() => parseAddress("127.0.0.1:70000", "listeners[2].address", LISTEN)).toThrow(
    "listeners[2].address: port must be 0..65535, got 70000",
  );
  expect(() => parseAddress("x", "f", LISTEN)).toThrow(ConfigError);
});

describe("IP literals", () => {
  test("IPv4 is four decimal octets", () => {
    expect(parseIPv4("192.0.2.255")).toEqual([192, 0, 2, 255]);
    for (const bad of ["1.2.3", "1.2.3.4.5", "1.2.3.256", "1.2.3.04", "1.2.3.-1", "1.2.3.4 ", "0x1.2.3.4", ""]) {
      expect(parseIPv4(bad)).toBeNull();
    }
  });

  test("IPv6 as eight pieces (the text rules are proto/ip_text.ts's, tested there)", () => {
    expect(parseIPv6("::ffff:1.2.3.4")).toEqual([0, 0, 0, 0, 0, 0xffff, 0x0102, 0x0304]);
    expect(parseIPv6("1::2::3")).toBeNull();
  });

  test("IPv6 canonical text (RFC 5952 §4)", () => {
    const canon = (s: string) => formatIPv6(parseIPv6(s)!);
    expect(canon("2001:0db8:0000:0000:0001:0000:0000:0001")).toBe("2001:db8::1:0:0:1");
    expect(canon("2001:db8:0:1:1:1:1:1")).toBe("2001:db8:0:1:1:1:1:1"); // one zero piece is not compressed
    expect(canon("2001:db8:0:0:1:0:0:0")).toBe("2001:db8:0:0:1::"); // the longer run wins
    expect(canon("0:0:1:0:0:1:0:1")).toBe("::1:0:0:1:0:1"); // ties: the first run
    expect(canon("::ffff:10.0.0.1")).toBe("::ffff:10.0.0.1");
    expect(canon("::1")).toBe("::1");
  });
});

describe("canonicalCidr", () => {
  test.each([
    ["10.0.0.0/8", "10.0.0.0/8"],
    ["192.0.2.7", "192.0.2.7/32"],
    ["0.0.0.0/0", "0.0.0.0/0"],
    ["2001:DB8::/32", "2001:db8::/32"],
    ["::1", "::1/128"],
    ["::/0", "::/0"],
    ["10.128.0.0/9", "10.128.0.0/9"],
  ])("%s -> %s", (text, cidr) => {
    expect(canonicalCidr(text)).toEqual({ cidr });
  });

  test.each([
    ["10.0.0.1/8", `"10.0.0.1/8" has bits set past the /8 prefix (did you mean "10.0.0.0/8"?)`],
    ["10.192.0.0/9", `"10.192.0.0/9" has bits set past the /9 prefix (did you mean "10.128.0.0/9"?)`],
    ["2001:db8::1/32", `"2001:db8::1/32" has bits set past the /32 prefix (did you mean "2001:db8::/32"?)`],
    ["10.0.0.0/33", `prefix length must be 0..32, got "33"`],
    ["::/129", `prefix length must be 0..128, got "129"`],
    ["10.0.0.0/", `prefix length must be 0..32, got ""`],
    ["10.0.0.0/8/8", `prefix length must be 0..32, got "8/8"`],
    ["nope", `must be an IP address or CIDR block ("10.0.0.0/8", "2001:db8::/32"), got "nope"`],
  ])("%p is refused", (text, error) => {
    expect(canonicalCidr(text)).toEqual({ error });
  });
});
