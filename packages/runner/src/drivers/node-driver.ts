import type { Driver } from "./driver.js";

/** A `run` that is one token ending in .js, .mjs or .cjs is a script file; anything else is inline code. */
const SCRIPT_FILE = /^\S+\.[cm]?js$/;

/**
 * `node`: `run` is a JS file (`node <file>`, relative paths from the runner's working directory) or an inline
 * script (`node -e <run>`), run with the runner's own Node binary.
 */
export const nodeDriver: Driver = {
  name: "node",
  command: (stage) => {
    const run = stage.run.trim();
    return { file: process.execPath, args: SCRIPT_FILE.test(run) ? [run] : ["-e", stage.run] };
  },
};
