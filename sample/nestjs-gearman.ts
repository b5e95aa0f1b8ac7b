// The sample uses the package from this checkout. In your own app, import from 'nestjs-gearman'.
export * from '../lib/index.js';
