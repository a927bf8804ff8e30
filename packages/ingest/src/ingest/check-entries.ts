/** Per-entry checks: each entry is accepted or rejected on its own, and repeats within one request are enqueued once. */
import { entryId, validateCliInvocation, type CliInvocationEvent } from "@flowmeter/shared";

export const MAX_ENTRY_DEPTH = 32;

export interface EntryRejection {
  index: number;
  code: "INVALID_PARAMS" | "PAYLOAD_TOO_LARGE";
  message: string;
}

export interface CheckedEntries {
  /** Valid entries, repeats included. */
  accepted: number;
  /** Valid entries to enqueue, first occurrence of each entryId(). */
  unique: CliInvocationEvent[];
  rejected: EntryRejection[];
}

export function checkEntries(entries: readonly unknown[], maxEntryBytes: number): CheckedEntries {
  const seen = new Set<string>();
  const unique: CliInvocationEvent[] = [];
  const rejected: EntryRejection[] = [];
  let accepted = 0;
  entries.forEach((entry, index) => {
    // Depth first: JSON.stringify and the validator recurse, and would overflow the stack on a deep entry.
    if (nestedDeeperThan(entry, MAX_ENTRY_DEPTH)) {
      rejected.push({ index, code: "INVALID_PARAMS", message: `entry is nested deeper than ${MAX_ENTRY_DEPTH} levels` });
      return;
    }
    const bytes = Buffer.byteLength(JSON.stringify(entry) ?? "");
    if (bytes > maxEntryBytes) {
      rejected.push({ index, code: "PAYLOAD_TOO_LARGE", message: `entry is ${bytes} bytes; at most ${maxEntryBytes} bytes are accepted per entry` });
      return;
    }
    const result = validateCliInvocation(entry);
    if (!result.ok) {
      rejected.push({ index, code: "INVALID_PARAMS", message: result.message });
      return;
    }
    accepted += 1;
    const id = entryId(result.event);
    if (!seen.has(id)) {
      seen.add(id);
      unique.push(result.event);
    }
  });
  return { accepted, unique, rejected };
}

/** True when objects/arrays nest more than `maxDepth` levels (the value itself is level 1). Iterative on purpose. */
export function nestedDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== "object" || item.value === null) continue;
    if (item.depth > maxDepth) return true;
    for (const child of Object.values(item.value)) {
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: item.depth + 1 });
    }
  }
  return false;
}
