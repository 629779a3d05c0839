import { defineConfig } from "vitest/config";

export default defineConfig({
  // Vite 8 compiles with Oxc: legacy decorators must be switched on here, whatever tsconfig includes.
  oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    setupFiles: ["reflect-metadata", "./test/setup/fast-check-seed.ts"],
    testTimeout: 60_000,
    pool: "forks",
  },
});
