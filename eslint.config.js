// Lint for the whole tree (`npm run lint`): typescript-eslint's recommended rules, no type-aware
// rules (they would double the run time on a 2-core box for findings tsc mostly covers already).
// Layout is prettier's job (.prettierrc.json), so no stylistic rules live here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The `globals` package is not a dependency; the few globals our plain .js/.mjs files use are named
// here (TypeScript files get no-undef switched off by typescript-eslint: tsc checks names there).
const node = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'setImmediate',
    'queueMicrotask',
    'AbortController',
    'TextEncoder',
    'TextDecoder',
    'fetch',
    'structuredClone',
    'globalThis',
  ].map((n) => [n, 'readonly']),
);
const browser = Object.fromEntries(
  [
    'window',
    'document',
    'location',
    'fetch',
    'console',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'URL',
    'URLSearchParams',
    'WebSocket',
    'navigator',
    'HTMLElement',
    'Event',
    'localStorage',
    'alert',
    'crypto',
    'Node',
    'performance',
    'EventSource',
  ].map((n) => [n, 'readonly']),
);

export default tseslint.config(
  {
    ignores: ['node_modules/', 'dist/', '.lenscap/', '.qemu-cache/', '.scratch/', 'packaging/'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: node,
    },
    rules: {
      // Late references (`let x; … () => x!; x = …`) are read by closures before the one assignment.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `{ stop: _s, ...rest }` drops a field on purpose; `_name` marks an argument kept for a signature.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { ...node, module: 'writable', require: 'readonly' },
    },
  },
  {
    files: ['scripts/dev-cloud/web/**/*.js'],
    languageOptions: { globals: browser, sourceType: 'script' },
  },
);
