/**
 * Workflow files named by run API callers (`POST /v1/runs {"file": …}`): resolved under the runner's workflows
 * directory (RUNNER_WORKFLOWS_DIR), and refused when they leave it, lexically (`../x.yaml`, an absolute path
 * elsewhere) or through a symbolic link.
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import type { WorkflowDefinition } from "@flowmeter/shared";
import { WorkflowFileError } from "../errors.js";
import { parseWorkflowText } from "./load-workflow-file.js";

export const MAX_WORKFLOW_FILE_BYTES = 1_048_576;

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
}

/** Reads and validates `file` under `dir`. Throws WorkflowFileError (path problems) or WorkflowValidationError. */
export async function loadWorkflowFromDir(dir: string, file: string, options: { drivers: readonly string[] }): Promise<WorkflowDefinition> {
  const shown = JSON.stringify(file.slice(0, 200));
  if (file.includes("\0")) throw new WorkflowFileError(`file ${shown} is not a valid path`, file);
  const root = await realpath(dir);
  const target = resolve(root, file);
  if (!inside(root, target)) throw new WorkflowFileError(`file ${shown} is outside the workflows directory`, file);
  let real: string;
  try {
    real = await realpath(target);
  } catch {
    throw new WorkflowFileError(`file ${shown} does not exist in the workflows directory`, file);
  }
  if (!inside(root, real)) throw new WorkflowFileError(`file ${shown} is outside the workflows directory (through a symbolic link)`, file);
  const info = await stat(real);
  if (!info.isFile()) throw new WorkflowFileError(`file ${shown} is not a regular file`, file);
  if (info.size > MAX_WORKFLOW_FILE_BYTES) throw new WorkflowFileError(`file ${shown} is larger than ${MAX_WORKFLOW_FILE_BYTES} bytes`, file);
  return parseWorkflowText(await readFile(real, "utf8"), relative(root, real), options);
}
