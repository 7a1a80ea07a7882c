#!/usr/bin/env node
// `computenet` executable: loads the TypeScript CLI through tsx (the TypeChain bindings import `.js`
// paths that exist only as `.ts`, which Node's own type stripping cannot resolve).
import { register } from "tsx/esm/api";

register();
await import("./computenet.ts");
