import { defineConfig } from "vitest/config";

// Two projects: unit/integration tests next to the code, end-to-end suites in test/. One embedded
// PostgreSQL for the whole run (test/support/global-setup.ts); each test file clones its own database.
export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    pool: "forks",
    projects: [
      {
        extends: true,
        test: { name: "unit", include: ["services/**/*.test.ts"], testTimeout: 30_000, hookTimeout: 60_000 },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // the e2e suites start whole stacks: one file at a time keeps a 2-core machine honest
          fileParallelism: false,
        },
      },
    ],
  },
});
