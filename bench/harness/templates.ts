/**
 * Peer configs are checked-in templates (bench/peers/*.tmpl) with `{{NAME}}`
 * holes filled at run time (ports, paths, thread counts). A hole without a
 * value is an error, so a typo cannot silently produce a broken config.
 */

const HOLE = /\{\{([A-Z0-9_]+)\}\}/g;

export function renderTemplate(text: string, vars: Readonly<Record<string, string | number>>): string {
  const missing = new Set<string>();
  const out = text.replace(HOLE, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) {
      missing.add(name);
      return "";
    }
    return String(v);
  });
  if (missing.size > 0) throw new Error(`template holes without a value: ${[...missing].join(", ")}`);
  return out;
}
