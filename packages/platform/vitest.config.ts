import { defineProject } from "vitest/config";

export default defineProject({
  test: { include: ["src/**/*.test.ts"], pool: "forks", testTimeout: 30_000, hookTimeout: 30_000 },
});
