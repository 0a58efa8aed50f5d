import { describe, expect, test } from "bun:test";
import { parse } from "smol-toml";
import { lineOf, locateIssues, tomlLines } from "./toml_lines.ts";
import { issuesOf } from "./test_util.ts";

const TEXT = `# edge
workers = 2   # a comment with [brackets] and "quotes"
[log]
level = "debug"

[[listeners]]
name = "a"
kind = "sni"
address = "127.0.0.1:0"

[[listeners]]
name = "public" # [[listeners]] in a comment
kind = "tunnel"
address = "127.0.0.1:70000"
[listeners.tls]
cert = "c.pem"
  key  =  'k.pem'

[[routes]]
match = "a.example"
targets = [
  "127.0.0.1:1",   # port = 2 inside an array is not a key
  "[::1]:2",
]
note = """
kind = "not a key"
[[routes]]
"""
"quoted.key" = 1
sni.dotted = true

[[routes]]
match = 'b.example'
inline = { port = 1, list = [1, 2] }
literal = '''
[[tokens]]
'''

[[tokens]]
name = "t"
`;

describe("tomlLines", () => {
  const at = tomlLines(TEXT);

  test("top-level keys and [table] keys", () => {
    expect(at.get("workers")).toBe(2);
    expect(at.get("log")).toBe(3);
    expect(at.get("log.level")).toBe(4);
  });

  test("[[array]] headers get their index; keys inside them theirs", () => {
    expect(at.get("listeners[0]")).toBe(6);
    expect(at.get("listeners[0].address")).toBe(9);
    expect(at.get("listeners[1]")).toBe(11);
    expect(at.get("listeners[1].name")).toBe(12);
    expect(at.get("listeners[1].address")).toBe(14);
  });

  test("a [table] under [[array]] belongs to its last entry", () => {
    expect(at.get("listeners[1].tls")).toBe(15);
    expect(at.get("listeners[1].tls.cert")).toBe(16);
    expect(at.get("listeners[1].tls.key")).toBe(17);
  });

  test("multi-line arrays and strings hide what looks like keys and headers", () => {
    expect(at.get("routes[0]")).toBe(19);
    expect(at.get("routes[0].targets")).toBe(21);
    expect(at.has("port")).toBe(false);
    expect(at.get("routes[0].note")).toBe(25);
    expect(at.has("routes[0].kind")).toBe(false);
    expect(at.get("routes[1]")).toBe(32);
    expect(at.get("tokens[0]")).toBe(39);
    expect(at.has("tokens[1]")).toBe(false);
  });

  test("quoted and dotted keys; inline tables are one key", () => {
    expect(at.get("routes[0].quoted.key")).toBe(29);
    expect(at.get("routes[0].sni.dotted")).toBe(30);
    expect(at.get("routes[1].inline")).toBe(34);
    expect(at.has("routes[1].inline.port")).toBe(false);
    expect(at.get("routes[1].literal")).toBe(35);
    expect(at.get("tokens[0].name")).toBe(40);
  });

  test("CRLF line ends count the same", () => {
    const crlf = tomlLines(TEXT.replaceAll("\n", "\r\n"));
    expect(Object.fromEntries(crlf)).toEqual(Object.fromEntries(at));
  });

  test("nested arrays of tables index per parent entry", () => {
    const t = `[[a]]\n[[a.b]]\nx = 1\n[[a.b]]\n[[a]]\n[[a.b]]\ny = 2\n`;
    const m = tomlLines(t);
    expect([m.get("a[0].b[0].x"), m.get("a[0].b[1]"), m.get("a[1]"), m.get("a[1].b[0].y")]).toEqual([3, 4, 5, 7]);
  });

  test("lineOf falls back to the enclosing key or table", () => {
    expect(lineOf(at, "routes[0].targets[1]")).toBe(21);
    expect(lineOf(at, "listeners[1].tls.client_ca")).toBe(15);
    expect(lineOf(at, "listeners[0].max_connections")).toBe(6);
    expect(lineOf(at, "admin.address")).toBeNull();
  });

  test("every prefix of the text scans without throwing (the scanner never sees worse than this)", () => {
    for (let i = 0; i <= TEXT.length; i++) tomlLines(TEXT.slice(0, i));
  });
});

describe("locateIssues", () => {
  const raw = parse(TEXT) as Record<string, unknown>;
  const loc = (issue: string) => locateIssues([issue], TEXT, raw, "edge.toml")[0];

  test("a field of a named entry: file, line, entry and its name, then the key", () => {
    expect(loc("listeners[1].address: port must be 0..65535, got 70000")).toBe('edge.toml:14: listeners[1] (name "public"): address: port must be 0..65535, got 70000');
    expect(loc("listeners[1].tls.ca: unknown key")).toBe('edge.toml:15: listeners[1] (name "public"): tls.ca: unknown key');
  });

  test("the entry itself; a route without a name shows its match", () => {
    expect(loc("listeners[0]: needs a route")).toBe('edge.toml:6: listeners[0] (name "a"): needs a route');
    expect(loc("routes[1].targets: is required")).toBe('edge.toml:32: routes[1] (match "b.example"): targets: is required');
    expect(loc("routes[0].targets[1]: bad")).toBe('edge.toml:21: routes[0] (match "a.example"): targets[1]: bad');
  });

  test("plain keys get the line; what has no line is left alone", () => {
    expect(loc("workers: must be 0..256, got 999")).toBe("edge.toml:2: workers: must be 0..256, got 999");
    expect(loc("log.level: must be debug | info")).toBe("edge.toml:4: log.level: must be debug | info");
    expect(loc("--workers: must be 0..256")).toBe("--workers: must be 0..256");
    expect(loc("/etc/t.toml: tokens[0].sha256: bad")).toBe("/etc/t.toml: tokens[0].sha256: bad");
    expect(loc("admin.address: bad")).toBe("admin.address: bad");
    expect(loc("no colon here")).toBe("no colon here");
  });
});

describe("parseConfig with a file name", () => {
  test("problems after parsing carry the file's line and the entry's name", () => {
    const toml = `workers = 999\n\n[[listeners]]\nname = "a"\nkind = "sni"\naddress = "127.0.0.1:0"\n\n[[listeners]]\nname = "public"\nkind = "sni"\naddress = "127.0.0.1:70000"\n`;
    expect(issuesOf(toml, { file: "config.toml" })).toEqual([
      "config.toml:1: workers: must be 0..256, got 999",
      'config.toml:11: listeners[1] (name "public"): address: port must be 0..65535, got 70000',
    ]);
    // Without a file name the problems read as before.
    expect(issuesOf(toml)).toEqual(["workers: must be 0..256, got 999", "listeners[1].address: port must be 0..65535, got 70000"]);
  });

  test("a syntax error names file:line:column", () => {
    expect(issuesOf(`workers = 1\nworkers = 2\n`, { file: "x.toml" })).toEqual(["x.toml:2:1: trying to redefine an already defined table or value"]);
  });
});
