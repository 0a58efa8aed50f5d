/**
 * `fetch` that trusts an extra CA (PEM), for an ACME directory behind a
 * private CA (a test CA like pebble's, or a company's internal ACME server).
 * The two runtimes spell this differently: Bun takes `tls: { ca }` per
 * request, Deno an HTTP client made once with `Deno.createHttpClient({ caCerts })`.
 * Without a CA this is the plain global `fetch`.
 */
export type FetchFn = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export function fetchWithCa(caPem?: string): FetchFn {
  if (!caPem) return (input, init) => fetch(input, init);
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Bun !== undefined) {
    return (input, init) => fetch(input, { ...init, tls: { ca: caPem } } as RequestInit);
  }
  if (g.Deno !== undefined) {
    const client = g.Deno.createHttpClient({ caCerts: [caPem] });
    return (input, init) => fetch(input, { ...init, client } as RequestInit);
  }
  throw new Error("fetchWithCa: edgemux runs on Bun or Deno; this runtime is neither");
}
