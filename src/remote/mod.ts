/**
 * Remote access through agents (issue 15): the operator's commands
 * (`edgemux shell`, `cp`, `agent-reload`), the frames an operator stream
 * carries after its open, and the confinement of paths to an agent's roots.
 * The agent's side lives in agent/ (remote_files.ts, remote_shell.ts); the
 * edge's in tunnel/edge/session.ts (acceptRemote: token role "operator",
 * `agents` patterns, the audit log line).
 */
export { describeFailure, EdgeRefusal, OperatorClient, type OperatorFlags, operatorSettings, RemoteFailure } from "./client.ts";
export { type CopyEnd, type CopyOptions, download, parseCopyEnd, upload } from "./cp.ts";
export { EXIT_LOST, runShell } from "./shell.ts";
export { reloadAgent } from "./reload.ts";
export { FrameDecoder, FrameType, type Frame } from "./frames.ts";
export { FrameStream } from "./frame_stream.ts";
export { type FileRoot, fileRoot, pathSegments, resolveRemotePath } from "./paths.ts";
