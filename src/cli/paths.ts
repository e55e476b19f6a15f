// Files whose place depends on how deep a module sits in dist/: named once,
// here, so a move inside src/ changes one line. (The parser's wasm and the
// dump writer sit beside the modules that load them.)
import { fileURLToPath } from 'node:url';

/** The bin (dist/src/main.js): package.json, the tests, the bench and the demo start this file. */
export const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** The package's own package.json, for --version. */
export const PACKAGE_JSON = fileURLToPath(new URL('../../../package.json', import.meta.url));
