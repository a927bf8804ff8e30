/**
 * Whether ClickHouse refused an insert because of what a row holds, so it would refuse that row every time (a value
 * it cannot parse or store), as opposed to failing for a reason a retry gets past: unreachable, timed out, out of
 * memory, too many parts, a replica away. Only the first sets a row aside as a dead letter; anything else retries its
 * job, so a row is never dead-lettered because ClickHouse came back in the middle of a batch.
 */

/** ClickHouse error codes (src/Common/ErrorCodes.cpp) that name a value of the data, not the server's state. */
const ROW_ERROR_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  128, // TOO_LARGE_ARRAY_SIZE
  130, // CANNOT_READ_ARRAY_FROM_TEXT
  131, // TOO_LARGE_STRING_SIZE
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
  467, // CANNOT_PARSE_BOOL
  691, // UNKNOWN_ELEMENT_OF_ENUM
]);

/** The ClickHouse error code of an error: clickhouse-js puts it in `code`, chDB in the message ("Code: 41. DB::Exception: …"). */
export function clickHouseErrorCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && /^\d+$/.test(code)) return Number(code);
  const match = /\bCode: (\d+)\./.exec(error instanceof Error ? error.message : String(error));
  return match === null ? undefined : Number(match[1]);
}

export function isRowRefusal(error: unknown): boolean {
  const code = clickHouseErrorCode(error);
  return code !== undefined && ROW_ERROR_CODES.has(code);
}
