/**
 * The agent's defaults, apart from the config parser so that the command
 * table (`edgemux agent --help`) can name them without loading it.
 */
export const AGENT_DEFAULTS = {
  transport: "upgrade",
  status: "off",
  reconnectMin: "500ms",
  reconnectMax: "30s",
  connectTimeout: "10s",
  openTimeout: "10s",
  udpIdle: "60s",
  // As the edge's stream_window default: a 64 KiB window caps one stream at 64 KiB per round trip,
  // and a round trip through two relays is several event-loop turns.
  streamWindow: 262_144,
  maxStreams: 16_384,
  /** [files] max_size: the largest file copied either way (4 GiB). */
  filesMaxSize: 4 * 1024 * 1024 * 1024,
  logLevel: "info",
  logFormat: "text",
} as const;
