import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Every workspace with tests: the packages, and the operations tests of infra/.
    projects: ["packages/*", "infra/ops-tests"],
  },
});
