echo "stage 2 placeholder"
