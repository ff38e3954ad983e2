import { defineConfig } from "vitest/config";

// Three projects: unit/integration tests next to the code, the attacks of test/security/, and end-to-end
// suites in test/. One embedded PostgreSQL for the whole run (test/support/global-setup.ts); each test file
// clones its own database. The unit and security files run two at a time (they mostly wait on PostgreSQL,
// sockets and child processes: one at a time left a 2-core machine 60% idle); the e2e suites start whole
// stacks and run alone, after them.
export default defineConfig({
  test: {
    globalSetup: ["test/support/global-setup.ts"],
    // refuses deep equality on large binary data, which walks a buffer element by element (README, Development)
    setupFiles: ["test/support/large-equality-guard.ts"],
    pool: "forks",
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["services/**/*.test.ts"],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          // the attacks of docs/security.md: each file brings up what it attacks (in-process apps, or one
          // service's process), none a whole stack, so they run beside the unit files
          name: "security",
          include: ["test/security/**/*.test.ts", "test/support/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "e2e",
          include: ["test/**/*.test.ts"],
          exclude: ["test/security/**", "test/support/**"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
