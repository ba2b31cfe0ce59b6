// Workaround: @net/testkit's prometheus.ts relies on an ambient declaration that is not part of a consumer's program
// when the testkit is compiled from source (the @net/source condition). Remove once testkit/src/prometheus.ts
// references it itself (/// <reference path="./prometheus-parse.d.ts" />).
/// <reference path="../../../packages/testkit/src/prometheus-parse.d.ts" />
