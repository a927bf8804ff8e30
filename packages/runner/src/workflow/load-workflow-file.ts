import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { WorkflowDefinition } from "@flowmeter/shared";
import { WorkflowValidationError } from "../errors.js";
import { validateWorkflow } from "./validate-workflow.js";
import { BUILT_IN_DRIVER_NAMES } from "../drivers/driver-registry.js";

export interface LoadWorkflowOptions {
  /** Driver names to accept; defaults to the built-in drivers (shell, node). */
  drivers?: readonly string[];
}

/**
 * Parses workflow text, JSON or YAML (`.json` is read as JSON, anything else as YAML, which also reads JSON),
 * and validates it. Throws WorkflowValidationError for a parse error or any invalid field.
 */
export function parseWorkflowText(text: string, source: string, options: LoadWorkflowOptions = {}): WorkflowDefinition {
  let value: unknown;
  const format = extname(source).toLowerCase() === ".json" ? "JSON" : "YAML";
  try {
    value = format === "JSON" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const reason = (error instanceof Error ? (error.message.split("\n")[0] ?? "") : String(error)).replace(/:\s*$/, "");
    throw new WorkflowValidationError([`cannot parse ${format}: ${reason}`], { source });
  }
  return validateWorkflow(value, { drivers: options.drivers ?? BUILT_IN_DRIVER_NAMES, source });
}

/** Reads and validates a workflow file (YAML or JSON); the CLI's entry point to a workflow. */
export async function loadWorkflowFile(path: string, options: LoadWorkflowOptions = {}): Promise<WorkflowDefinition> {
  return parseWorkflowText(await readFile(path, "utf8"), path, options);
}
