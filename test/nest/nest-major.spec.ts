import { ClientProxy } from '@nestjs/microservices';

// Each jest config names the Nest major it is meant to run against; this proves the run loads it.
// `setOnDispatchHook` arrived with Nest 12.
test(`the Nest loaded is Nest ${process.env.EXPECTED_NEST_MAJOR}`, () => {
  const hasNest12Api = typeof (ClientProxy.prototype as { setOnDispatchHook?: unknown }).setOnDispatchHook === 'function';
  expect(process.env.EXPECTED_NEST_MAJOR).toMatch(/^1[12]$/);
  expect(hasNest12Api ? '12' : '11').toBe(process.env.EXPECTED_NEST_MAJOR);
});
