#!/usr/bin/env bun
/**
 * `edgemux COMMAND [flags]`: the commands are the table in commands.ts
 * (`edgemux help` lists them); flags are parsed and judged in flags.ts.
 */
import { detectRuntime } from "../runtime/mod.ts";
import { runCommand } from "./commands.ts";

const runtime = detectRuntime();

const code = await runCommand(runtime, runtime.args, (s) => console.log(s), (s) => console.error(s));
if (code !== null) runtime.exit(code);
