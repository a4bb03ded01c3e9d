import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'URL', 'setTimeout', 'clearTimeout', 'AbortController', 'AbortSignal', 'Buffer'].map(
    (g) => [g, 'readonly'],
  ),
);

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'scripts/node24/', 'coverage/', '.demo/', '.stack/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: nodeGlobals },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tool config files must default-export; our own code never does.
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Named exports only.' },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/main.ts', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-globals': ['error', { name: 'process', message: 'Only src/main.ts reads process.*' }],
    },
  },
  {
    // Pure decision logic: time, randomness and I/O come in as arguments.
    files: ['src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                'node:*',
                '@aws-sdk/*',
                'chokidar',
                'pino',
                'prom-client',
                'jose',
                'write-file-atomic',
                '../adapters/*',
              ],
              message: 'domain/ is pure: no I/O, SDKs or logging.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'domain/ takes time as an argument.' },
        { object: 'Math', property: 'random', message: 'domain/ takes randomness as an argument.' },
      ],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'fetch', 'performance'],
    },
  },
  {
    // The loop talks to ports only.
    files: ['src/lease-loop.ts', 'src/vending-pipeline.ts', 'src/lease-outcome.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['./adapters/*', './http/*', '@aws-sdk/*', 'node:*'],
              message: 'lease-loop talks to ports only.',
            },
          ],
        },
      ],
    },
  },
);
