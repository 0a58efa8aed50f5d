/**
 * Where things are in a TOML text: the line of each table header and each
 * key, by the field path that validation names them with (`workers`,
 * `log.level`, `listeners[2]`, `listeners[2].port`, `listeners[2].tls.cert`).
 * smol-toml's parse gives values, not positions; this pure scanner recovers
 * lines for messages (`edge.toml:23: listeners[2] (name "public"): port: …`).
 *
 * It runs only on a text the parser already accepted, so it can be small:
 * it reads line by line, tracks the current table (`[a.b]`, `[[a]]` with the
 * index of each array-of-tables entry, a `[a.b]` under `[[a]]` belonging to
 * the last entry, as TOML says), and skips what is not a key: comments,
 * strings (multi-line ones across lines), and lines inside multi-line arrays
 * and inline tables. Keys inside inline tables and inline arrays of tables
 * are not located; their enclosing key is.
 */

/** A bare key, or a basic or literal quoted one. */
const KEY_PART = /^(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')/;

/** Reads a dotted key at `pos`: its parts and where it ends, or null when none starts there. */
function readKey(line: string, pos: number): { parts: string[]; end: number } | null {
  const parts: string[] = [];
  let i = pos;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    const m = KEY_PART.exec(line.slice(i));
    if (m === null) return null;
    parts.push(unquote(m[0]));
    i += m[0].length;
    let j = i;
    while (line[j] === " " || line[j] === "\t") j++;
    if (line[j] !== ".") return { parts, end: i };
    i = j + 1;
  }
}

function unquote(k: string): string {
  if (k.startsWith("'")) return k.slice(1, -1);
  if (!k.startsWith('"')) return k;
  try {
    return JSON.parse(k) as string;
  } catch {
    return k.slice(1, -1); // a TOML escape JSON lacks (\UXXXXXXXX): close enough for a message
  }
}

/** The field path of a key: `a.b` and `[i]` as validation writes them. */
function join(prefix: string, part: string): string {
  return prefix === "" ? part : `${prefix}.${part}`;
}

/** Field path → 1-based line of the header or key that defines it (the first, if a path repeats). */
export function tomlLines(text: string): Map<string, number> {
  const at = new Map<string, number>();
  const set = (path: string, line: number) => {
    if (!at.has(path)) at.set(path, line);
  };
  /** Entries seen so far of each array of tables, by its resolved path (`listeners`, `listeners[0].rules`). */
  const arrays = new Map<string, number>();
  /** Resolves header key parts: a part naming an array of tables means its last entry. */
  const resolve = (parts: string[]): string => {
    let p = "";
    for (const part of parts) {
      p = join(p, part);
      const n = arrays.get(p);
      if (n !== undefined) p += `[${n - 1}]`;
    }
    return p;
  };
  let table = "";
  /** Open `[` and `{` of a value that spans lines. */
  let depth = 0;
  /** Inside a multi-line string: its closing delimiter. */
  let ml: '"""' | "'''" | null = null;
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.endsWith("\r") ? lines[n]!.slice(0, -1) : lines[n]!;
    const lineNo = n + 1;
    let pos = 0;
    if (ml === null && depth === 0) {
      while (line[pos] === " " || line[pos] === "\t") pos++;
      if (line.startsWith("[[", pos)) {
        const k = readKey(line, pos + 2);
        if (k === null) continue;
        const parent = resolve(k.parts.slice(0, -1));
        const path = join(parent, k.parts[k.parts.length - 1]!);
        const count = arrays.get(path) ?? 0;
        arrays.set(path, count + 1);
        table = `${path}[${count}]`;
        set(table, lineNo);
        pos = line.indexOf("]]", k.end) + 2;
      } else if (line[pos] === "[") {
        const k = readKey(line, pos + 1);
        if (k === null) continue;
        table = resolve(k.parts);
        set(table, lineNo);
        pos = line.indexOf("]", k.end) + 1;
      } else if (line[pos] !== "#" && pos < line.length) {
        const k = readKey(line, pos);
        if (k === null) continue;
        let eq = k.end;
        while (line[eq] === " " || line[eq] === "\t") eq++;
        if (line[eq] !== "=") continue;
        let path = table;
        for (const part of k.parts) path = join(path, part);
        set(path, lineNo);
        pos = eq + 1;
      } else continue;
      if (pos <= 0) continue;
    }
    // The rest of the line: a value (or the tail of one). Track strings, comments and brackets.
    while (pos < line.length) {
      if (ml !== null) {
        const close = line.indexOf(ml, pos);
        if (close < 0) break;
        pos = close + 3;
        while (line[pos] === ml[0]) pos++; // up to two quotes may end the content: """a""""
        ml = null;
        continue;
      }
      const c = line[pos]!;
      if (c === "#") break;
      if (line.startsWith('"""', pos) || line.startsWith("'''", pos)) {
        ml = line.startsWith('"""', pos) ? '"""' : "'''";
        pos += 3;
        continue;
      }
      if (c === '"') {
        pos++;
        while (pos < line.length && line[pos] !== '"') pos += line[pos] === "\\" ? 2 : 1;
        pos++;
        continue;
      }
      if (c === "'") {
        const close = line.indexOf("'", pos + 1);
        pos = close < 0 ? line.length : close + 1;
        continue;
      }
      if (c === "[" || c === "{") depth++;
      else if ((c === "]" || c === "}") && depth > 0) depth--;
      pos++;
    }
  }
  return at;
}

/**
 * The line of a field path, or of the nearest enclosing one that has a line
 * (`routes[0].targets[2]` → the line of `targets`), or null.
 */
export function lineOf(lines: ReadonlyMap<string, number>, field: string): number | null {
  let f = field;
  for (;;) {
    const n = lines.get(f);
    if (n !== undefined) return n;
    const cut = Math.max(f.lastIndexOf("."), f.lastIndexOf("["));
    if (cut <= 0) return null;
    f = f.slice(0, cut);
  }
}

/** A field path as validation writes it (`log.level`, `listeners[2].tls.cert`); flag labels and file paths are not. */
const FIELD = /^[a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z0-9_-]+|\[\d+\])*$/;
/** The first array-of-tables entry in a path, and what follows it. */
const ENTRY = /^((?:[a-z_][a-z0-9_]*\.)*[a-z_][a-z0-9_]*\[\d+\])(.*)$/;
const NAME_SHOWN = 40;

/** The raw value at a path of `name` and `name[i]` parts, or undefined. */
function valueAt(raw: Record<string, unknown>, path: string): unknown {
  let v: unknown = raw;
  for (const part of path.split(".")) {
    const m = /^([^[]+)((?:\[\d+\])*)$/.exec(part);
    if (m === null || typeof v !== "object" || v === null) return undefined;
    v = (v as Record<string, unknown>)[m[1]!];
    for (const idx of m[2]!.match(/\d+/g) ?? []) v = Array.isArray(v) ? v[Number(idx)] : undefined;
  }
  return v;
}

/**
 * Problems as `<file>:<line>: <field>: <problem>`, and for a field inside an
 * array-of-tables entry `<file>:<line>: listeners[2] (name "public"): port: <problem>`
 * (routes without a name show their `match`). The line is the key's, or its
 * table header's. Problems whose field has no line (a flag, another file,
 * a missing table) are left as they are.
 */
export function locateIssues(issues: readonly string[], text: string, raw: Record<string, unknown>, file: string): string[] {
  const lines = tomlLines(text);
  return issues.map((issue) => {
    const colon = issue.indexOf(": ");
    if (colon < 0) return issue;
    const field = issue.slice(0, colon);
    if (!FIELD.test(field)) return issue;
    const line = lineOf(lines, field);
    if (line === null) return issue;
    const where = `${file}:${line}: `;
    const m = ENTRY.exec(field);
    if (m === null) return where + issue;
    const entry = m[1]!;
    const rest = m[2]!.replace(/^\./, "");
    const t = valueAt(raw, entry);
    let label = "";
    if (typeof t === "object" && t !== null) {
      const o = t as Record<string, unknown>;
      const [key, v] = typeof o.name === "string" ? ["name", o.name] : typeof o.match === "string" ? ["match", o.match] : ["", null];
      if (v !== null) label = ` (${key} ${JSON.stringify(v.length > NAME_SHOWN ? v.slice(0, NAME_SHOWN) + "…" : v)})`;
    }
    return `${where}${entry}${label}: ${rest === "" ? "" : `${rest}: `}${issue.slice(colon + 2)}`;
  });
}
