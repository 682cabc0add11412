#!/usr/bin/env node
// The installed executable: runs the compiled gateway (see src/main.ts).
import "../dist/main.js"
