// The Nest tests again, compiled to CommonJS and run against Nest 11 (CommonJS), installed
// beside this file. Every `@nestjs/*` and `rxjs` import, ours and Nest's own, resolves there.
const path = require('node:path');
const nest11 = path.join(__dirname, 'node_modules');

// Read by test/nest/nest-major.spec.ts, which proves this run really loads Nest 11.
process.env.EXPECTED_NEST_MAJOR = '11';

module.exports = {
  rootDir: path.join(__dirname, '..', '..'),
  roots: ['<rootDir>/test/nest'],
  testMatch: ['**/*.spec.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@nestjs/(common|core|microservices|testing|platform-express|terminus)(/.*)?$': `${nest11}/@nestjs/$1$2`,
    '^rxjs(/.*)?$': `${nest11}/rxjs$1`,
  },
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      {
        tsconfig: { ...require('../../tsconfig.json').compilerOptions, module: 'CommonJS', moduleResolution: 'node10' },
      },
    ],
  },
  testEnvironment: 'node',
  testTimeout: 20000,
};
