// `npm run lint` (part of `npm test`): typescript-eslint's type-aware rules over every package's sources, tests
// included; formatting is Prettier's (.prettierrc.json), import cycles scripts/check-import-cycles.mjs's.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "**/*.js", "**/*.mjs", "**/*.cjs", "**/vitest.config.ts", "vitest.config.ts"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `void promise` marks a promise left to run on purpose; anything else unawaited is a bug.
      "@typescript-eslint/no-floating-promises": ["error", { ignoreVoid: true }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      // An `async` method without `await` is how an interface that returns promises is implemented simply.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    // supertest types every answer's body as `any`; tests read fields of the JSON they own.
    files: ["**/*.test.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-return": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
    },
  },
);
