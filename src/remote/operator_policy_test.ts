/**
 * The `operator` token role: `[[tokens]] agents` patterns, validated with the
 * rest of the config, and what the grant allows.
 */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../config/mod.ts";
import { issuesOf, LISTENER } from "../config/test_util.ts";
import { hashToken, TokenStore } from "../auth/mod.ts";

const SHA = "ab".repeat(32);
const token = (extra: string) => `${LISTENER}\n[[tokens]]\nname = "ops"\nsha256 = "${SHA}"\n${extra}\n`;

describe("[[tokens]] role operator", () => {
  test("agents patterns are read with the role", () => {
    const c = parseConfig(token(`roles = ["operator", "destination"]\nagents = ["dev-*", "build@ci"]`));
    expect(c.tokens[0]).toMatchObject({ name: "ops", roles: ["operator", "destination"], agents: ["dev-*", "build@ci"] });
  });

  test("a token without the role has no agents key", () => {
    const c = parseConfig(token(`roles = ["destination"]`));
    expect(c.tokens[0]!.agents).toBeUndefined();
  });

  test("the role needs agents; agents need the role; patterns are checked", () => {
    expect(issuesOf(token(`roles = ["operator"]`))).toEqual([expect.stringContaining(`tokens[0].agents: role "operator" needs the agents it may reach`)]);
    expect(issuesOf(token(`roles = ["operator"]\nagents = []`))).toEqual([expect.stringContaining("tokens[0].agents: must name at least one agent pattern")]);
    expect(issuesOf(token(`roles = ["source"]\nagents = ["*"]`))).toEqual([expect.stringContaining(`tokens[0].agents: only applies to role "operator"`)]);
    expect(issuesOf(token(`roles = ["operator"]\nagents = ["a b", "x/y"]`))).toEqual([
      expect.stringContaining("tokens[0].agents[0]: must be an agent name or pattern"),
      expect.stringContaining("tokens[0].agents[1]: must be an agent name or pattern"),
    ]);
    expect(issuesOf(token(`roles = ["operator"]\nagents = ["a", "a"]`)).join("\n")).toContain("tokens[0].agents");
    expect(issuesOf(token(`roles = ["operater"]`)).join("\n")).toContain(`did you mean "operator"`);
  });

  test("allowsAgent: globs over agent names, only with the role", () => {
    const base = { sha256: hashToken("x"), services: ["*"], allow: [], deny: [], maxSessions: 0 };
    const store = new TokenStore([
      { ...base, name: "ops", roles: ["operator"], agents: ["dev-*", "db.1"] },
      { ...base, name: "all", sha256: hashToken("y"), roles: ["operator"], agents: ["*"] },
      { ...base, name: "dest", sha256: hashToken("z"), roles: ["destination"], agents: ["*"] },
    ]);
    const ops = store.byName("ops")!;
    expect(ops.allowsAgent("dev-1")).toBe(true);
    expect(ops.allowsAgent("dev-")).toBe(true);
    expect(ops.allowsAgent("db.1")).toBe(true);
    expect(ops.allowsAgent("dbx1")).toBe(false); // "." is literal
    expect(ops.allowsAgent("prod-1")).toBe(false);
    expect(ops.allowsAgent("Dev-1")).toBe(false); // agent names are case-sensitive
    expect(store.byName("all")!.allowsAgent("anything@host")).toBe(true);
    expect(store.byName("dest")!.allowsAgent("dev-1")).toBe(false);
  });
});
