#!/bin/bash
# smoke-tests.sh

set -e

BASE_URL=$1
TOKEN="${API_TOKEN}"

echo "Running smoke tests against ${BASE_URL}"

# Test 1: Health endpoint
echo "Test 1: Health check..."
curl -f "${BASE_URL}/health" || exit 1
echo "✓ Health check passed"

# Test 2: Ready endpoint
echo "Test 2: Readiness check..."
curl -f "${BASE_URL}/ready" || exit 1
echo "✓ Readiness check passed"

# Test 3: Metrics endpoint
echo "Test 3: Metrics endpoint..."
curl -f "${BASE_URL}/metrics" | grep -q "credit_assessments_total" || exit 1
echo "✓ Metrics endpoint passed"

# Test 4: Assessment API
echo "Test 4: Assessment API..."
ASSESSMENT_ID=$(curl -s -X POST "${BASE_URL}/api/v1/assessment" \
  -H "Authorization: Bearer ${TOKEN}" \
  -H "Content-Type: application/json" \
  -d '{
    "clientId": "123e4567-e89b-12d3-a456-426614174000",
    "loanAmount": 50000,
    "loanTerm": 12
  }' | jq -r '.id')

if [ -z "$ASSESSMENT_ID" ]; then
  echo "✗ Assessment API failed"
  exit 1
fi
echo "✓ Assessment API passed (ID: ${ASSESSMENT_ID})"

echo ""
echo "All smoke tests passed!"
