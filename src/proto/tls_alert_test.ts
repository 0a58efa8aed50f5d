import { describe, expect, test } from "bun:test";
import { TlsAlert } from "../errors/mod.ts";
import { decodeTlsAlert, encodeTlsAlert, TLS_ALERT_RECORD_BYTES } from "./tls_alert.ts";

describe("encodeTlsAlert", () => {
  test("golden bytes: fatal alert record, version 0x0303, length 2", () => {
    expect([...encodeTlsAlert(TlsAlert.unrecognized_name)]).toEqual([21, 3, 3, 0, 2, 2, 112]);
    expect([...encodeTlsAlert(TlsAlert.decode_error)]).toEqual([21, 3, 3, 0, 2, 2, 50]);
    expect([...encodeTlsAlert(TlsAlert.record_overflow)]).toEqual([21, 3, 3, 0, 2, 2, 22]);
    expect(TLS_ALERT_RECORD_BYTES).toBe(7);
  });

  test("writes into a caller-owned buffer and returns a 7-byte view of it", () => {
    const out = new Uint8Array(16).fill(0xee);
    const v = encodeTlsAlert(TlsAlert.internal_error, out);
    expect(v.buffer).toBe(out.buffer);
    expect(v.length).toBe(7);
    expect([...out]).toEqual([21, 3, 3, 0, 2, 2, 80, ...new Array(9).fill(0xee)]);
    const exact = new Uint8Array(7);
    expect(encodeTlsAlert(10, exact)).toBe(exact);
  });

  test("rejects bad descriptions and short buffers", () => {
    expect(() => encodeTlsAlert(256)).toThrow(RangeError);
    expect(() => encodeTlsAlert(-1)).toThrow(RangeError);
    expect(() => encodeTlsAlert(1.5)).toThrow(RangeError);
    expect(() => encodeTlsAlert(50, new Uint8Array(6))).toThrow(RangeError);
  });

  test("decodeTlsAlert reads it back and refuses anything else", () => {
    for (let d = 0; d < 256; d++) expect(decodeTlsAlert(encodeTlsAlert(d))).toEqual({ level: 2, description: d });
    expect(decodeTlsAlert(new Uint8Array([21, 3, 3, 0, 2, 2]))).toBeNull();
    expect(decodeTlsAlert(new Uint8Array([22, 3, 3, 0, 2, 2, 50]))).toBeNull();
    expect(decodeTlsAlert(new Uint8Array([21, 3, 3, 0, 3, 2, 50]))).toBeNull();
    expect(decodeTlsAlert(new Uint8Array([21, 3, 1, 0, 2, 1, 0]))).toEqual({ level: 1, description: 0 });
  });
});
