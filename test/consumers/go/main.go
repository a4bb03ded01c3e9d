// A real consumer: the AWS SDK for Go v2 default credential chain (the container-credentials provider via
// AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE), PutObject against RGW
// once a second for CONSUMER_LOOP_SECONDS. Everything comes from the environment; secrets never in argv.
// Prints one JSON object: the SDK version and every call's access key id and outcome (never a secret).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

type call struct {
	T   int64  `json:"t"`
	Key string `json:"key"`
	OK  bool   `json:"ok"`
	Err string `json:"err,omitempty"`
}

func main() {
	seconds, _ := strconv.Atoi(os.Getenv("CONSUMER_LOOP_SECONDS"))
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(os.Getenv("CONSUMER_ENDPOINT"))
		o.UsePathStyle = true
		o.RetryMaxAttempts = 1
	})
	calls := []call{}
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		c := call{T: time.Now().UnixMilli()}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		creds, err := cfg.Credentials.Retrieve(cctx)
		if err == nil {
			c.Key = creds.AccessKeyID
			_, err = client.PutObject(cctx, &s3.PutObjectInput{
				Bucket: aws.String(os.Getenv("CONSUMER_BUCKET")),
				Key:    aws.String(fmt.Sprintf("%s/%d", os.Getenv("CONSUMER_KEY"), i)),
				Body:   bytes.NewReader([]byte("from go")),
			})
		}
		cancel()
		c.OK = err == nil
		if err != nil {
			c.Err = fmt.Sprintf("%T", err)
		}
		calls = append(calls, c)
		time.Sleep(time.Until(time.UnixMilli(c.T).Add(time.Second)))
	}
	out, _ := json.Marshal(map[string]any{"sdk": "aws-sdk-go-v2", "calls": calls})
	fmt.Println(string(out))
}
