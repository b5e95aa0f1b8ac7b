import { GearmanMissingPeerError } from './errors.js';

/**
 * Loads an optional peer dependency only when a feature needs it, so that users who do not use the
 * feature need not install it. A dynamic import works from both builds (the CommonJS one turns it
 * into require). When the package is missing the error names it, the version range to install, and
 * the feature that asked.
 */
export async function loadOptionalPeer<T>(packageName: string, range: string, feature: string): Promise<T> {
  let loaded: unknown;
  try {
    loaded = await import(packageName);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
      throw new GearmanMissingPeerError(
        packageName,
        `${feature} needs the optional package ${packageName}, which is not installed: npm install ${packageName}@${range}`,
        { cause: error },
      );
    }
    throw error;
  }
  // ES modules see a CommonJS package's exports as `default`; the CommonJS build sees them directly.
  const module = loaded as { default?: unknown };
  return (module.default ?? module) as T;
}
