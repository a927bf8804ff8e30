import type { Driver } from "./driver.js";

/** `shell`: the stage's `run` through `sh -c`. */
export const shellDriver: Driver = {
  name: "shell",
  command: (stage) => ({ file: "sh", args: ["-c", stage.run] }),
};
