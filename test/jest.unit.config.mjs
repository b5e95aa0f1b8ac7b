// `npm run test:unit`: the tests that need no build, no Nest 11 install, no gearmand and no peer
// process, for a fast loop while working (seconds). `npm test` runs them again with everything else.
import base from './jest.config.mjs';

export default {
  ...base,
  testMatch: [
    '<rootDir>/test/architecture/**/*.spec.ts',
    '<rootDir>/test/cli/server-command.spec.ts',
    '<rootDir>/test/common/**/*.spec.ts',
    '<rootDir>/test/metrics/metric-families.spec.ts',
    '<rootDir>/test/docs/links.spec.ts',
    '<rootDir>/test/protocol/{admin,codec-properties,decoder,encoder,envelope,packet-types,result-fetch,batch}.spec.ts',
    '<rootDir>/test/connection/{backoff,fifo,framed-socket,in-memory-socket,read-turns,server-address}.spec.ts',
    '<rootDir>/test/job-server/{delayed-jobs,job-index,memory-release,schedule,gearmand-order,gearmand-limits,admin-access,job-handles,stored-results}.spec.ts',
    '<rootDir>/test/job-server/core/**/*.spec.ts',
    '<rootDir>/test/nest/{payload-codec,retry-policy,job-metadata}.spec.ts',
    '<rootDir>/test/cli/server-arguments.spec.ts',
  ],
};
