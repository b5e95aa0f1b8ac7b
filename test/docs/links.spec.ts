import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

/**
 * Every relative link of README.md, CONTRIBUTING.md and docs/*.md reaches a file of this
 * repository, and a `#fragment` a heading of the page it points to (GitHub's heading ids).
 */
const repo = process.cwd();
const pages = [
  'README.md',
  'CONTRIBUTING.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name)),
];

/** The text outside code blocks and inline code, where links live. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens. */
function headingId(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function headingIds(page: string): Set<string> {
  const text = readFileSync(join(repo, page), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.*)$/gm)].map((match) => headingId(match[1])));
}

describe('links in the docs', () => {
  it.each(pages)('%s links to pages and headings that exist', (page) => {
    const broken: string[] = [];
    for (const [, target] of prose(readFileSync(join(repo, page), 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [path, fragment] = target.split('#');
      const file = path === '' ? page : normalize(join(dirname(page), path));
      if (!existsSync(join(repo, file))) {
        broken.push(`${target}: no ${relative(repo, join(repo, file))}`);
        continue;
      }
      if (fragment !== undefined && file.endsWith('.md') && !headingIds(file).has(fragment))
        broken.push(`${target}: no such heading in ${file}`);
    }
    expect(broken).toEqual([]);
  });
});
