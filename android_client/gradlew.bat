@rem Gradle wrapper launcher (minimal), see gradlew. The wrapper jar is not committed: create it with
@rem "gradle wrapper --gradle-version 8.14.3" or by opening this folder in Android Studio.
@echo off
set APP_HOME=%~dp0
set WRAPPER_JAR=%APP_HOME%gradle\wrapper\gradle-wrapper.jar
if not exist "%WRAPPER_JAR%" (
  echo gradlew: %WRAPPER_JAR% is missing. Run "gradle wrapper --gradle-version 8.14.3" in %APP_HOME% 1>&2
  exit /b 1
)
set JAVACMD=java
if defined JAVA_HOME set JAVACMD=%JAVA_HOME%\bin\java
"%JAVACMD%" %JAVA_OPTS% %GRADLE_OPTS% "-Dorg.gradle.appname=gradlew" -classpath "%WRAPPER_JAR%" org.gradle.wrapper.GradleWrapperMain %*
