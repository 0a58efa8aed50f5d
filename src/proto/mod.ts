/**
 * Sans-I/O codecs: bytes in, values or "need more bytes" out; encoders write
 * into caller-owned buffers. No I/O, no timers, no runtime globals.
 */
export {
  ClientHelloParser,
  type ClientHelloInfo,
  type ClientHelloParserOptions,
  DEFAULT_MAX_HELLO_BYTES,
  parseClientHello,
  TlsParseError,
} from "./tls_client_hello.ts";
export { decodeTlsAlert, encodeTlsAlert, TLS_ALERT_RECORD_BYTES, type TlsAlertRecord } from "./tls_alert.ts";
export {
  canonicalHostname,
  canonicalHostnameBytes,
  canonicalPattern,
  checkHostname,
  checkPattern,
  type HostnameCheck,
  MAX_HOSTNAME_BYTES,
  MAX_LABEL_BYTES,
  type PatternCheck,
} from "./hostname.ts";
export {
  encodeProxyV1,
  encodeProxyV2,
  type ProxyAddresses,
  type ProxyHeader,
  ProxyHeaderParser,
  type ProxyHeaderParserOptions,
  type ProxyTlv,
  proxyV1Length,
  proxyV2Length,
  PP2_TYPE,
  PP2_TYPE_EDGEMUX_IDENTITY,
} from "./proxy_protocol.ts";
export { formatHostPort, formatPeer, ipv6GroupsText, parseIPv4, parseIPv6Groups, unmapV4 } from "./ip_text.ts";
export {
  cmdName,
  encodeSmuxHeader,
  encodeSmuxUpd,
  readU32LE,
  SMUX_HEADER_SIZE,
  SMUX_INITIAL_PEER_WINDOW,
  SMUX_MAX_FRAME_LENGTH,
  SMUX_UPD_SIZE,
  SmuxCmd,
  type SmuxCmdValue,
  type SmuxFrame,
  SmuxFrameDecoder,
} from "./smux.ts";
export {
  canonicalIPv4,
  canonicalIPv6,
  formatAuthority,
  MAX_AUTHORITY_LENGTH,
  parseAuthority,
  parseHost,
  parsePort,
  type Authority,
  type HostKind,
} from "./authority.ts";
export {
  encodeClosingResponse,
  fieldCount,
  fieldList,
  fieldValue,
  type HttpFields,
  Http1RequestParser,
  type Http1RequestParserOptions,
  Http1ResponseParser,
  type Http1ResponseParserOptions,
  type HttpRequestHead,
  type HttpResponseHead,
  listHasToken,
  printable,
  REASON_PHRASES,
  reasonPhrase,
} from "./http1_head.ts";
export {
  encodeAuthStatus,
  encodeMethodChoice,
  encodeReply,
  MAX_SOCKS_MESSAGE,
  Socks5Parser,
  SocksAddressType,
  SocksCommand,
  SocksError,
  SocksMethod,
  type SocksAuth,
  type SocksGreeting,
  type SocksPhase,
  type SocksRequest,
} from "./socks5.ts";
export {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  encodeData,
  encodeGoaway,
  encodeHeadersFrames,
  encodePing,
  encodeRstStream,
  encodeSettings,
  encodeSettingsAck,
  encodeWindowUpdate,
  Flag,
  FRAME_HEADER_SIZE,
  FrameType,
  H2Code,
  H2Error,
  type H2Frame,
  H2FrameDecoder,
  type H2FrameDecoderOptions,
  MAX_WINDOW,
  readU32,
  Setting,
  writeFrameHeader,
} from "./h2_frame.ts";
export { DEFAULT_TABLE_SIZE, encodeHeaders, type HeaderBlock, HpackDecoder } from "./hpack.ts";
export { concatBytes } from "./bytes.ts";
export { CONNECTION_SPECIFIC, type H2PseudoFields, readH2RequestFields } from "./h2_request_fields.ts";
export { ChunkQueue } from "./chunk_queue.ts";
export { encodeWsClose, encodeWsFrame, unmask, WsClose, type WsEvent, WsFrameDecoder, WsOpcode, WsProtocolError } from "./websocket.ts";
