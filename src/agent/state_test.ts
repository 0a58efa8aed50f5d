import { describe, expect, test } from "bun:test";
import { X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_EDGES, openState, readEdges, recordEdge } from "./state.ts";

const mode = (p: string) => statSync(p).mode & 0o777;

describe("agent state dir", () => {
  test("created 0700 with a 0600 key and a self-signed certificate; reopened, the same identity", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "edgemux-state-")), "state");
    const s = await openState(dir, "dev-1");
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, "agent.key"))).toBe(0o600);
    const cert = new X509Certificate(readFileSync(join(dir, "agent.crt")));
    expect(cert.subject).toBe("CN=dev-1");
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey((await import("node:crypto")).createPrivateKey(s.keyPem))).toBe(true);
    expect(cert.fingerprint256.replaceAll(":", "").toLowerCase()).toBe(s.fingerprint);
    const again = await openState(dir, "dev-1");
    expect(again.fingerprint).toBe(s.fingerprint);
    expect(again.warnings).toEqual([]);
    // A new name: a new certificate for the same key.
    const renamed = await openState(dir, "dev-2");
    expect(renamed.fingerprint).not.toBe(s.fingerprint);
    expect(renamed.keyPem).toBe(s.keyPem);
    expect(new X509Certificate(renamed.certPem).subject).toBe("CN=dev-2");
  });

  test("a loose existing directory or key is tightened, with a warning", async () => {
    const dir = mkdtempSync(join(tmpdir(), "edgemux-state-"));
    chmodSync(dir, 0o755);
    await openState(dir, "a");
    chmodSync(join(dir, "agent.key"), 0o644);
    chmodSync(dir, 0o750);
    const s = await openState(dir, "a");
    expect(s.warnings.length).toBe(2);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, "agent.key"))).toBe(0o600);
  });

  test("edges.json keeps the edges last reached, newest first, one per address, bounded", () => {
    const dir = mkdtempSync(join(tmpdir(), "edgemux-state-"));
    expect(readEdges(dir)).toEqual([]);
    for (let i = 0; i < MAX_EDGES + 3; i++) recordEdge(dir, { edge: `e${i}:7443`, session: `s${i}`, seen_as: "1.2.3.4:5", at: "t" });
    recordEdge(dir, { edge: "e9:7443", session: "again", seen_as: "x", at: "t" });
    const list = readEdges(dir);
    expect(list.length).toBe(MAX_EDGES);
    expect(list[0]).toMatchObject({ edge: "e9:7443", session: "again" });
    expect(list.filter((e) => e.edge === "e9:7443").length).toBe(1);
    expect(mode(join(dir, "edges.json"))).toBe(0o600);
  });
});
