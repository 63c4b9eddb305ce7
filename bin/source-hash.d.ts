// Types of bin/source-hash.js (plain JavaScript: bin/herald.js loads it before any TypeScript loader).
export declare const ROOT: string;
export declare const DIST: string;
export declare const MANIFEST: string;
export declare function sourceHash(root?: string): string;
export declare function distIsCurrent(root?: string): boolean;
