import pkg from '../../package.json' with { type: 'json' };

export const PRODUCT_NAME = 'Tessera';
export const VERSION: string = pkg.version;
