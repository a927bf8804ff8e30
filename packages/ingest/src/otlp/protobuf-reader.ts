/**
 * A reader of the protobuf wire format, enough for OTLP requests: varints (as bigint where 64 bits matter),
 * fixed32/fixed64, length-delimited fields; fields of any other number or wire type are skipped, as protobuf
 * requires (a newer client's fields are ignored). No npm package ships current generated code for the OTLP messages:
 * @opentelemetry/otlp-transformer 0.301.x writes requests with its own hand-written encoder and reads only responses,
 * and @opentelemetry/otlp-proto-exporter-base (deprecated, 0.51.1) carries protobufjs code generated from an older
 * opentelemetry-proto. Malformed input throws OtlpDecodeError.
 */

export class OtlpDecodeError extends Error {
  override readonly name = "OtlpDecodeError";
}

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LENGTH_DELIMITED = 2;
export const WIRE_FIXED32 = 5;

export class ProtobufReader {
  pos: number;
  private readonly end: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    end = buf.length,
  ) {
    this.pos = start;
    this.end = end;
  }

  atEnd(): boolean {
    return this.pos >= this.end;
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const raw = this.varint();
    const field = Math.floor(raw / 8);
    if (field === 0) throw new OtlpDecodeError("protobuf: field number 0");
    return { field, wire: raw % 8 };
  }

  /** A varint up to 2^53 exactly (lengths, enums, counts, bools). */
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let index = 0; index < 10; index += 1) {
      if (this.pos >= this.end) throw new OtlpDecodeError("protobuf: input ends inside a varint");
      const byte = this.buf[this.pos++] as number;
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new OtlpDecodeError("protobuf: varint longer than 10 bytes");
  }

  /** A varint as a signed 64-bit integer (int64 fields). */
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let index = 0; index < 10; index += 1) {
      if (this.pos >= this.end) throw new OtlpDecodeError("protobuf: input ends inside a varint");
      const byte = this.buf[this.pos++] as number;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    throw new OtlpDecodeError("protobuf: varint longer than 10 bytes");
  }

  fixed64(): bigint {
    this.need(8);
    const value = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getBigUint64(0, true);
    this.pos += 8;
    return value;
  }

  fixed32(): number {
    this.need(4);
    const value = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getUint32(0, true);
    this.pos += 4;
    return value;
  }

  double(): number {
    this.need(8);
    const value = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8).getFloat64(0, true);
    this.pos += 8;
    return value;
  }

  /** A length-delimited field's bytes (a view, not a copy). */
  bytes(): Uint8Array {
    const length = this.varint();
    this.need(length);
    const bytes = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return bytes;
  }

  /** A reader over an embedded message. */
  message(): ProtobufReader {
    const length = this.varint();
    this.need(length);
    const reader = new ProtobufReader(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return reader;
  }

  string(): string {
    return DECODER.decode(this.bytes());
  }

  /** Skips a field of this wire type. */
  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_FIXED64:
        this.need(8);
        this.pos += 8;
        return;
      case WIRE_LENGTH_DELIMITED:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.need(4);
        this.pos += 4;
        return;
      default:
        throw new OtlpDecodeError(`protobuf: wire type ${wire} is not supported`);
    }
  }

  private need(bytes: number): void {
    if (this.pos + bytes > this.end) throw new OtlpDecodeError("protobuf: input ends inside a field");
  }
}

// Bytes that are not UTF-8 become U+FFFD, as everywhere in ingest.
const DECODER = new TextDecoder("utf-8", { fatal: false });

/** Writes the few messages ingest answers with (export responses, google.rpc.Status). */
export class ProtobufWriter {
  private readonly parts: Buffer[] = [];

  varintField(field: number, value: number | bigint): this {
    if (value === 0 || value === 0n) return this;
    this.parts.push(encodeVarint(BigInt(field * 8 + WIRE_VARINT)), encodeVarint(BigInt.asUintN(64, BigInt(value))));
    return this;
  }

  bytesField(field: number, bytes: Uint8Array): this {
    if (bytes.length === 0) return this;
    this.parts.push(encodeVarint(BigInt(field * 8 + WIRE_LENGTH_DELIMITED)), encodeVarint(BigInt(bytes.length)), Buffer.from(bytes));
    return this;
  }

  stringField(field: number, text: string): this {
    return this.bytesField(field, Buffer.from(text));
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function encodeVarint(value: bigint): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80n) {
    bytes.push(Number(rest & 0x7fn) | 0x80);
    rest >>= 7n;
  }
  bytes.push(Number(rest));
  return Buffer.from(bytes);
}
