#!/usr/bin/env bun
/**
 * `edgemux <command>`: serve, check-config, hostname, default-config, version.
 * Arguments are parsed with node:util parseArgs (same in Bun and Deno).
 */
import { detectRuntime } from "../runtime/mod.ts";
import { runCommand } from "./commands.ts";

const runtime = detectRuntime();

const code = await runCommand(runtime, runtime.args, (s) => console.log(s), (s) => console.error(s));
if (code !== null) runtime.exit(code);
