import { GearmanMissingPeerError, GearmanErrorCode } from '../../lib/common/errors.js';
import { loadOptionalPeer } from '../../lib/common/optional-peer.js';

describe('loadOptionalPeer', () => {
  it('loads an installed package', async () => {
    const promClient = await loadOptionalPeer<{ Registry: unknown }>('prom-client', '^15.0.0', 'Metrics');
    expect(typeof promClient.Registry).toBe('function');
  });

  it('a missing package is a GearmanMissingPeerError naming it, the feature, and the install line', async () => {
    const error = await loadOptionalPeer('nestjs-gearman-absent-peer', '^1.0.0', 'The absent feature').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(GearmanMissingPeerError);
    expect(error).toMatchObject({
      code: GearmanErrorCode.MISSING_PEER_DEPENDENCY,
      packageName: 'nestjs-gearman-absent-peer',
      message:
        'The absent feature needs the optional package nestjs-gearman-absent-peer, which is not installed: npm install nestjs-gearman-absent-peer@^1.0.0',
    });
  });
});
