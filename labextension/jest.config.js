// Unit tests cover the pure modules (formatting, state machine, history,
// leak episodes); they run in node with ts-jest, no browser or JupyterLab needed.
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testRegex: '\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  }
};
