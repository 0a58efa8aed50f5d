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
