// The main suite: ES modules under `node --experimental-vm-modules`, against Nest 12
// (which ships as ES modules only and which jest's CommonJS loader cannot require on Node 20).
// Read by test/nest/nest-major.spec.ts, which proves this run really loads Nest 12.
process.env.EXPECTED_NEST_MAJOR = '12';

export default {
  rootDir: '..',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
  testEnvironment: 'node',
  testTimeout: 20000,
};
