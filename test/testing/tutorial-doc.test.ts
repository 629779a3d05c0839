/**
 * docs/testing.md shows the tutorial's files whole: the code blocks tagged with a path, joined per
 * file with a blank line between them, are exactly the files in test/tutorial/, and none is left out.
 * So the tutorial cannot drift from the code the suite runs.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DOC = "docs/testing.md";
const TUTORIAL = "test/tutorial";
const BLOCK = /^```ts (\S+)\n([\s\S]*?)\n```$/gm;

/** The doc's tagged code blocks, joined per file path. */
function blocksByFile(markdown: string): Map<string, string> {
  const parts = new Map<string, string[]>();
  for (const [, path, body] of markdown.matchAll(BLOCK))
    parts.set(path!, [...(parts.get(path!) ?? []), body!]);
  return new Map([...parts].map(([path, bodies]) => [path, `${bodies.join("\n\n")}\n`]));
}

function tutorialFiles(folder: string): string[] {
  return readdirSync(join(ROOT, folder), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? tutorialFiles(`${folder}/${entry.name}`) : [`${folder}/${entry.name}`],
  );
}

describe("docs/testing.md", () => {
  const shown = blocksByFile(readFileSync(join(ROOT, DOC), "utf8"));

  it("shows every tutorial file, and only those", () => {
    expect([...shown.keys()].sort()).toEqual(tutorialFiles(TUTORIAL).sort());
  });

  it.each(tutorialFiles(TUTORIAL))("shows %s exactly as it is", (file) => {
    expect(shown.get(file)).toBe(readFileSync(join(ROOT, file), "utf8"));
  });
});
