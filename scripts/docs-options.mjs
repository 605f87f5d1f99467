#!/usr/bin/env node
// The options table of docs/api.md, from `parlor serve --help`: the block between
// '<!-- generated from `parlor serve --help` -->' and '<!-- end of generated table -->'.
//   node scripts/docs-options.mjs [path/to/parlor]          rewrites docs/api.md
//   node scripts/docs-options.mjs --check [path/to/parlor]  exits 1 when the table is stale
// tests/integration/chat_cli.test.mjs runs the check.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const BEGIN = '<!-- generated from `parlor serve --help` -->\n';
const END = '<!-- end of generated table -->';

export function optionsTable(binary) {
    let text;
    try {
        text = execFileSync(binary, ['serve', '--help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
        text = `${e.stdout || ''}${e.stderr || ''}`; // --help may exit non-zero
    }
    const lines = text.split('\n');
    const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const rows = [];
    for (let i = 0; i + 1 < lines.length; i++) {
        const m = /^ {2}(--[a-z0-9-]+)\s+(.*)$/.exec(lines[i]);
        if (!m) continue;
        const info = lines[i + 1].trim();
        const env = /env (\S+?);/.exec(info)[1];
        const def = /default (.*?)(;|$)/.exec(info)[1];
        const bounds = /; (-?\d+)\.\.(-?\d+)$/.exec(info);
        rows.push(`| \`${m[1]}\` | \`${env}\` | ${def === '(none)' ? def : `\`${def}\``} | ` +
                  `${bounds ? `${bounds[1]} – ${bounds[2]}` : ''} | ${esc(m[2].trim())} |`);
    }
    return '| flag | environment variable | default | bounds | meaning |\n|---|---|---|---|---|\n' +
        rows.join('\n') + '\n';
}

export function withTable(doc, table) {
    const start = doc.indexOf(BEGIN) + BEGIN.length;
    const end = doc.indexOf(END, start);
    if (start < BEGIN.length || end < 0) throw new Error('docs/api.md: generated-table markers not found');
    return doc.slice(0, start) + table + doc.slice(end);
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const args = process.argv.slice(2);
    const check = args[0] === '--check';
    const binary = args[check ? 1 : 0] || 'build/parlor';
    const doc = readFileSync('docs/api.md', 'utf8');
    const next = withTable(doc, optionsTable(binary));
    if (check) {
        if (next !== doc) {
            console.error('docs/api.md: the options table differs from `parlor serve --help`; run node scripts/docs-options.mjs');
            process.exit(1);
        }
    } else {
        writeFileSync('docs/api.md', next);
    }
}
