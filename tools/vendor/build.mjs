// Rebuilds the vendored front-end files from the pinned npm packages (run by `make vendor`).
import { build } from 'esbuild';
import { cpSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';

const out = '../../src/visionloop/web/static/vendor';
const version = (pkg) => JSON.parse(readFileSync(`node_modules/${pkg}/package.json`, 'utf8')).version;

mkdirSync(`${out}/ol`, { recursive: true });
await build({ entryPoints: ['ol-entry.js'], bundle: true, format: 'esm', minify: true, target: 'es2020',
              outfile: `${out}/ol/ol.js`, legalComments: 'eof', logLevel: 'warning' });
cpSync('node_modules/ol/ol.css', `${out}/ol/ol.css`);
cpSync('node_modules/ol/LICENSE.md', `${out}/ol/LICENSE.md`);
for (const dep of ['rbush', 'quickselect']) {  // bundled into ol.js
  cpSync(`node_modules/${dep}/LICENSE`, `${out}/ol/LICENSE-${dep}`);
}

mkdirSync(`${out}/uplot`, { recursive: true });
cpSync('node_modules/uplot/dist/uPlot.esm.js', `${out}/uplot/uPlot.esm.js`);
cpSync('node_modules/uplot/dist/uPlot.min.css', `${out}/uplot/uPlot.min.css`);
cpSync('node_modules/uplot/LICENSE', `${out}/uplot/LICENSE`);

writeFileSync(`${out}/VERSIONS.json`, JSON.stringify({
  ol: version('ol'), uplot: version('uplot'), esbuild: version('esbuild'),
}, null, 2) + '\n');
