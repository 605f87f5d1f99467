// Builds the web client into web/dist: src/main.js and src/app.css bundled and minified by
// esbuild under content-hashed names (app.<hash>.js, app.<hash>.css), index.html written from
// index.html with those names, and a gzip copy (.gz) of every text file for servers that send
// precompressed files. Usage: node build.mjs [--watch] [--outdir DIR]
import { build, context } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, constants as zc } from 'node:zlib';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const watch = args.includes('--watch');
const outIdx = args.indexOf('--outdir');
const outdir = path.resolve(outIdx >= 0 ? args[outIdx + 1] : path.join(here, 'dist'));

const options = {
    absWorkingDir: here,
    entryPoints: { app: 'src/main.js', 'app-style': 'src/app.css' },
    bundle: true,
    minify: !watch,
    sourcemap: watch ? 'inline' : false,
    format: 'iife',
    target: ['chrome100', 'firefox100', 'safari15'],
    // [hash] is esbuild's content hash; the css entry is renamed to app.<hash>.css below.
    entryNames: '[name].[hash]',
    outdir,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
};

// Text assets get a .gz twin; compressing already-compressed images gains nothing.
const COMPRESS = /\.(html|js|css|json|svg|txt|map|webmanifest)$/;

async function finish(metafile) {
    const outputs = Object.keys(metafile.outputs).map((p) => path.resolve(here, p));
    let js = null;
    let css = null;
    for (const p of outputs) {
        const base = path.basename(p);
        if (/^app\.[A-Z0-9]+\.js$/.test(base)) js = base;
        if (/^app-style\.[A-Z0-9]+\.css$/.test(base)) css = base;
    }
    if (!js || !css) throw new Error(`build: unexpected outputs ${outputs.join(', ')}`);
    // esbuild names the css entry after its key; give it the public name app.<hash>.css.
    const cssName = css.replace(/^app-style\./, 'app.');
    const cssData = await readFile(path.join(outdir, css));
    await rm(path.join(outdir, css));
    await writeFile(path.join(outdir, cssName), cssData);
    // Relative URLs (no leading '/'): the page works under any path prefix of a reverse proxy.
    const template = await readFile(path.join(here, 'index.html'), 'utf8');
    const html = template
        .replace('{{CSS}}', cssName)
        .replace('{{JS}}', js)
        .replace('{{BUILD}}', createHash('sha256').update(js + cssName).digest('hex').slice(0, 12));
    await writeFile(path.join(outdir, 'index.html'), html);
    // Remove what an earlier build left (old hashes), then compress the rest.
    const keep = new Set(['index.html', js, cssName, ...(await staticFiles())]);
    for (const name of await readdir(outdir)) {
        const plain = name.endsWith('.gz') ? name.slice(0, -3) : name;
        if (!keep.has(plain)) await rm(path.join(outdir, name), { recursive: true });
    }
    for (const name of keep) {
        if (!COMPRESS.test(name)) continue;
        const data = await readFile(path.join(outdir, name));
        await writeFile(path.join(outdir, `${name}.gz`),
                        gzipSync(data, { level: zc.Z_BEST_COMPRESSION }));
    }
    return { js, css: cssName };
}

// Files copied as they are from web/public (icons), if any.
async function staticFiles() {
    const dir = path.join(here, 'public');
    let names = [];
    try {
        names = await readdir(dir);
    } catch {
        return [];
    }
    for (const n of names) await writeFile(path.join(outdir, n), await readFile(path.join(dir, n)));
    return names;
}

await mkdir(outdir, { recursive: true });
if (watch) {
    const ctx = await context({
        ...options,
        plugins: [{
            name: 'finish',
            setup(b) {
                b.onEnd(async (res) => {
                    if (res.errors.length) return;
                    const out = await finish(res.metafile);
                    console.log(`built ${out.js} ${out.css}`);
                });
            },
        }],
    });
    await ctx.watch();
    console.log(`watching web/src -> ${outdir}`);
} else {
    const res = await build(options);
    const out = await finish(res.metafile);
    console.log(`web/dist: index.html, ${out.js}, ${out.css} (+ .gz)`);
}
